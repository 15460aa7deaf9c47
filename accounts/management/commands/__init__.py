"""createuser, deleteuser and listusers."""
