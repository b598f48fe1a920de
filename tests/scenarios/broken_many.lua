-- several mistakes: every one is reported, each with its line
cluster { replica = 3 }
workload {
  producers = { rate = "fast", windw = 4 },
  consumers = { ack = "manul" },
}
phases { chaos = 5, heal = 1, drian = 2 }
expect { no_los = true }
