"""Site validation: probe plans, the bundle shipped as a job, campaigns, verdicts and reports."""
