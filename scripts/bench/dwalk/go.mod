module dwalk

go 1.26.0
