"""Pipeline stages: each module has pure functions and a thin `main(argv)`."""
