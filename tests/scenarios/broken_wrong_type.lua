-- a string where a number belongs

network { loss = "high" }
