"""Live ("hot") state of every device: the newest reading, read by primary key."""
