-- wrong types for the producer options
workload { producers = { confirms = "no", persistent = 1, confirm = false } }
