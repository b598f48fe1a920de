-- Consumers reject every 10th message without requeue and no dead-letter
-- queue exists: the broker drops them. Discarded by the consumer's choice,
-- never counted as loss.
scenario { name = "engine_reject_discard" }
cluster { replicas = 3 }
workload {
  producers = { rate = 100 },
  consumers = { poison = { every = 10, requeue = false }, reject = { probability = 0.02, requeue = true } },
}
phases { chaos = 3, heal = 1, drain = 4 }
expect { no_loss = true, no_duplicates = true }
