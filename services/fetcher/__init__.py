"""The fetcher service: reads the drop folder and the feeds, and puts articles on the chain."""
