"""The cartoon characters of the built-in world: sampling a cast, drawing it (signed distance
fields), its motion, and the dialogue/render records a drawing is made from. The training world reuses it."""
