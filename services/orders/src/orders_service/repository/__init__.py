"""Every query of the orders service, one module per aggregate."""
