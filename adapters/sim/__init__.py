"""The simulated venue: pure, deterministic matching of orders against candles."""

from adapters.sim.config import SimConfig
from adapters.sim.orders import SimOrder
from adapters.sim.venue import SimVenue, SimVenueError

__all__ = ["SimConfig", "SimOrder", "SimVenue", "SimVenueError"]
