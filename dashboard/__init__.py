"""The dashboard page: stats as stacked bars and a search box, drawn in the browser."""
