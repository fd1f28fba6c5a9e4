"""The worker: claims tasks, runs them through a provider, stores the images, finishes them."""
