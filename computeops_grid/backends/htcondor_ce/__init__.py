"""HTCondor-CE: grid-universe submit descriptions through the htcondor bindings."""
