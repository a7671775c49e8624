"""The command modules of `posedata` (one per command group); posedata/cli.py assembles them."""
