"""The service's actors, one module per actor (or tight family), and the tree that runs them."""

from ._service import Ports, Service, ServiceOptions, build_service

__all__ = ["Ports", "Service", "ServiceOptions", "build_service"]
