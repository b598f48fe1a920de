-- workload.probe is a boolean.
workload { probe = "yes" }
