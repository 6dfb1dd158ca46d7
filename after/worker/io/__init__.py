"""The worker's I/O threads: the changes follower, the store writers, the job runner, the presence
keeper. Each talks to the outside world and reports to the loop only through its inbox."""
