"""The cluster port: one mutual-TLS listener shared by Raft, the CA, the dispatcher and the control-API
forward, with the caller's identity taken from its certificate before anything it sent is read."""
