"""The makemore backprop course library, what every notebook imports: the names data and
vocabulary (`data`), the lecture's MLP (`mlp`), answer checks (`checks`: `cmp`, `check`,
`by_hand`), training length (`training`) and the course's facts (`config`).

The instructor's side (release, sandboxed autograding, reports) is the `grader` package.
"""
