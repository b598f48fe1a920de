-- A progress bound longer than heal + drain could never be observed.
phases { chaos = 2, heal = 1, drain = 2 }
expect { progress = 5 }
