"""What several backends share: the one tool runner and retry policy, job directories, the
one output collection, the payload's command line, sandboxes and image checks."""
