-- the same bound twice
expect { leaderless = 2, leaderless_s = 3 }
