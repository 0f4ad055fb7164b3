"""The provincial platform boundary: request signing, the client, and the simulator."""
