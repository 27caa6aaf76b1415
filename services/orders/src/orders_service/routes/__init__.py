"""HTTP routes: thin (parse, call one service function, return a schema), one module per topic."""
