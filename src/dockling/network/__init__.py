"""Container networking: IPAM, the bridge driver, netns, nftables rules, ports, embedded DNS."""
