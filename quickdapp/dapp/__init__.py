"""The example dapp: views that submit jobs, and the demo's job types."""
