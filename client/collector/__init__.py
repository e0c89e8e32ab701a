"""The collector application: gymnasium environments, a numpy policy and n-step returns,
storing experience through the SDK. Apart from the SDK, so that `import replay_service`
never imports gymnasium."""
