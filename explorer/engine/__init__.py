"""The engine: Keras in its own process (process.py), the window's client of it (client.py), the named
requests both sides speak (requests.py) with one task per kind (tasks.py), and replies whose arrays travel
through shared memory (shared.py). No Qt, and no Keras outside the engine process."""
