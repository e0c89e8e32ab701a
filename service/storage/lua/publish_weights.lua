-- Publish a new version of a buffer's policy weights.
-- KEYS[1]: the buffer's meta hash; KEYS[2]: its weights hash
-- ARGV: safetensors body, unix time
-- The ETag joins the buffer's incarnation and the version, so a buffer deleted
-- and re-created never hands out an ETag a collector already holds.
-- Returns {'gone'} if the buffer is gone, else {'ok', version, etag}.
local incarnation = redis.call('HGET', KEYS[1], 'incarnation')
if not incarnation then return {'gone'} end
local version = redis.call('HINCRBY', KEYS[2], 'version', 1)
local etag = incarnation .. '-' .. version
redis.call('HSET', KEYS[2], 'body', ARGV[1], 'etag', etag, 'published_at', ARGV[2])
return {'ok', version, etag}
