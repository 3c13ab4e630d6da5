"""wirewatch's services: the fetcher, the worker chain, the alerter, and the command line."""
