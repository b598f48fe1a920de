-- Selectors in every state: all up, one down, one paused, no leader at all.
-- A wrong answer raises an error, which stops the run with exit 2.
scenario { name = "engine_selectors" }
cluster { replicas = 3 }
workload { producers = { rate = 50 } }
phases { chaos = 4, heal = 1, drain = 2 }

local function has(set, n)
  for _, v in ipairs(set) do if v == n then return true end end
  return false
end
local function check(cond, what)
  if not cond then error("selector check failed: " .. what) end
end

local first
at(0.9, function()
  check(#up() == 3 and #down() == 0 and #paused() == 0, "all up")
  check(#leader() == 1, "one leader")
  first = leader()[1]
  check(#followers() == 2 and not has(followers(), first), "followers exclude the leader")
  crash(leader())
end)
at(1.0, function()
  -- just after the crash, before a new election: no leader
  check(#down() == 1 and has(down(), first), "the crashed leader is down")
  check(#up() == 2 and not has(up(), first), "up excludes it")
  check(#leader() == 0, "no leader yet")
  check(#followers() == 2 and not has(followers(), first), "no leader: followers = up")
  pause(followers()[1])
end)
at(1.1, function()
  check(#paused() == 1 and #up() == 1, "one paused, one up")
  check(#followers() <= 1 and not has(followers(), first) and not has(followers(), paused()[1]),
        "followers never include a down or paused broker")
  crash(up())
end)
at(1.2, function()
  check(#up() == 0 and #followers() == 0 and #leader() == 0, "nothing up: every selector empty")
  check(#down() == 2 and #paused() == 1, "two down, one paused")
  resume(paused()); restart(down())
end)
at(3.5, function()
  check(#up() == 3 and #leader() == 1 and #followers() == 2, "recovered")
end)
expect { no_loss = true, no_duplicates = false, replica_agreement = true }
