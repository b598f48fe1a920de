-- expect{} is strict: a misspelt bound is an error with a suggestion.
expect { leaderles_max = 1 }
