-- Teaching pair: fsync=never loses confirmed messages on a power loss.
scenario { name = "engine_teach", seeds = "1..2" }
cluster { replicas = 3 }
workload { producers = { rate = 200 } }
phases { chaos = 3, heal = 1, drain = 3 }
at(2, function() power_loss() end)
expect { no_loss = true, no_duplicates = false, replica_agreement = false }
teach {
  lesson = "fsync=never acknowledges writes a power loss erases",
  violation = "no_loss",
  weak = { fsync = "never" },
  strong = { fsync = "always" },
}
