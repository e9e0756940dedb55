"""tuner: node provisioning and system tuning for MI355X inference clusters."""
