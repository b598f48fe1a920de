-- mistakes in the refusal rules
workload {
  consumers = { nack = { probabilty = 0.1 }, poison = { requeue = 1 }, reject = true },
  dead_letter_consumers = 1,
}
