-- the action is scheduled after the end
phases { chaos = 2, heal = 1, drain = 1 }

at(100, function() crash(leader()) end)
