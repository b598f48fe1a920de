-- an auto-acked delivery cannot be refused
workload { consumers = { ack = "auto", nack = { probability = 0.1 } } }
