-- the action fails at run time
phases { chaos = 2, heal = 1, drain = 1 }
at(1, function()
  crash(node(7))
end)
