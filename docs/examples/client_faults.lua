-- Client faults and permanent disk loss, at chosen times.
-- producer(i) / consumer(i) name a client (0-based); partition_client cuts
-- it from some brokers; crash_client / restart_client kill and reboot the
-- client process; wipe destroys a broker's disk and boots it empty.
scenario { name = "client_faults", seeds = "1..2" }

cluster { replicas = 3, snapshot_every = 200 }
workload {
  producers = { count = 2, rate = 100, timeout_ms = 500, retries = 20 },
  consumers = { count = 2, idempotent = true },
}
phases { chaos = 8, heal = 2, drain = 8 }

-- producer 0 can no longer reach the leader: it must find its way around
at(1, function() partition_client(producer(0), leader()) end)
-- consumer 1 dies (its unacked deliveries go back to the queue) and stays
-- down until heal; producer 1 dies and is rebooted a second later
at(2, function() crash_client(consumer(1)); crash_client(producer(1)) end)
at(3, function() restart_client(producer(1)) end)
-- a follower's disk is destroyed: it restarts empty and catches up
at(4, function() wipe(followers()[1]) end)
at(6, function() heal() end)   -- removes the client partition

-- a publish in flight when its producer died is unknown, never lost; the
-- consumers are idempotent only each on its own, so duplicates may happen
expect { no_loss = true, no_duplicates = false, replica_agreement = true }
