"""Background work: the Huey queue, its schedules and the worker process (`clientela worker`)."""
