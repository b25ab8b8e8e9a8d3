"""Device runner: transports (where and how to reach a device); deploy, profile and report build on them."""
