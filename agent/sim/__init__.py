"""The simulated fleet: node trees, sshd nodes, GPU library, BMCs."""
