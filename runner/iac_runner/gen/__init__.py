"""Generated from proto/controlplane.proto by scripts/gen-proto.sh. Do not edit."""
