-- consumers for a dead-letter queue that does not exist
workload { dead_letter_consumers = 1 }
