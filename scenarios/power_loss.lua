-- power_loss: the whole rack loses power, twice; every broker crashes at the
-- same instant and unsynced writes are torn at sector boundaries. With
-- fsync=always nothing is confirmed before it is on a majority's platter, so
-- recovery from the disks must bring back every confirmed message (compare
-- teach_fsync, where fsync=never loses them).
scenario {
  name = "power_loss",
  description = "Every broker loses power at once, twice; recovery runs from "
    .. "the virtual disks with torn unsynced writes.",
  seeds = "1..10",
}

cluster { replicas = 3, acks = "quorum", fsync = "always" }
disk { crash = "torn", keep = 0.5 }
workload {
  producers = { count = 1, rate = 200, idempotent = true, timeout_ms = 500, retries = 30 },
  consumers = { count = 1, ack = "manual", idempotent = true, processing_ms = 6 },
}
phases { chaos = 14, heal = 3, drain = 20 }

at(5, function() log("power loss"); power_loss() end)
at(6, function() restart(all()) end)
at(10, function() log("power loss again"); power_loss() end)
at(11.5, function() restart(all()) end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  recovery = 3,
}
