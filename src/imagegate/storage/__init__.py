"""Where result images live: a local directory or an S3-compatible bucket."""
