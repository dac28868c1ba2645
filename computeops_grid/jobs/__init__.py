"""Jobs: the description users write, their states, and the store that records them."""
