"""The chain jobs: watchChain follows new blocks, deployMulticall3 deploys.

Everything here imports web3 lazily, inside the functions that need it, so
that importing the workers app never loads it.
"""
