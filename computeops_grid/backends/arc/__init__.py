"""ARC CEs over REST or through the arc* client tools."""
