-- Fetch a buffer's newest policy weights unless the caller holds them already.
-- KEYS[1]: the weights hash
-- ARGV: the ETag the caller holds ('' for none)
-- Returns {'unpublished'} if none were published, {'unchanged', version, etag} if
-- the caller's are the newest, else {'ok', version, etag, body}.
local stored = redis.call('HMGET', KEYS[1], 'version', 'etag')
if not stored[1] then return {'unpublished'} end
if stored[2] == ARGV[1] then return {'unchanged', tonumber(stored[1]), stored[2]} end
return {'ok', tonumber(stored[1]), stored[2], redis.call('HGET', KEYS[1], 'body')}
