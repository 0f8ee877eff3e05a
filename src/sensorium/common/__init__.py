"""What two or more systems really share: errors, logging, seeding, distributed set-up, I/O."""
