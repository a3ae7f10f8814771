package main

import (
	"math/rand/v2"
	"strings"
)

// Word lists for memory contents. Real Engram memories are short
// statements about a user, a task or the world; a handful of templates
// filled from these lists gives text with a realistic byte distribution
// (it compresses like English, unlike the embeddings next to it).
var (
	subjects = []string{"The user", "Alice", "Bob", "The team", "Our customer", "The assistant", "Maria",
		"The on-call engineer", "The project lead", "Kenji", "The support agent", "Priya", "The manager",
		"The new hire", "Tomás", "The research group", "Grandma", "The landlord", "Sam", "The doctor"}
	verbs = []string{"prefers", "mentioned", "asked about", "decided on", "dislikes", "scheduled",
		"is worried about", "recommended", "forgot", "finished", "started", "cancelled", "approved",
		"is learning", "bought", "booked", "reviewed", "rejected", "wants to revisit", "shared"}
	objects = []string{"dark roast coffee", "the quarterly report", "a trip to Lisbon", "the database migration",
		"vegetarian recipes", "the new onboarding flow", "a dentist appointment", "the API rate limits",
		"Python type hints", "the budget for Q3", "a standing desk", "the Kubernetes upgrade",
		"morning runs", "the contract renewal", "jazz records", "the incident postmortem",
		"a birthday gift for Leo", "the backup policy", "Spanish lessons", "the flaky integration test",
		"noise-cancelling headphones", "the hiring plan", "a weekend in the mountains", "the pricing page"}
	qualifiers = []string{"in the morning", "after lunch", "every Friday", "last week", "next month",
		"before the deadline", "since January", "during the standup", "on weekends", "by email",
		"in the team channel", "twice a day", "when travelling", "at the offsite", "for the demo",
		"without being asked", "again", "for the third time", "as a priority", "tentatively"}
	reasons = []string{"because it saves time", "since the old one broke", "to reduce costs",
		"after reading a review", "on a colleague's advice", "to meet the SLA", "for health reasons",
		"because the kids enjoy it", "to unblock the release", "as agreed with finance"}
)

// sentence returns one or two plausible sentences, 40-200 bytes.
func sentence(r *rand.Rand, b *strings.Builder) string {
	b.Reset()
	n := 1 + r.IntN(2)
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(subjects[r.IntN(len(subjects))])
		b.WriteByte(' ')
		b.WriteString(verbs[r.IntN(len(verbs))])
		b.WriteByte(' ')
		b.WriteString(objects[r.IntN(len(objects))])
		if r.IntN(3) > 0 {
			b.WriteByte(' ')
			b.WriteString(qualifiers[r.IntN(len(qualifiers))])
		}
		if r.IntN(3) == 0 {
			b.WriteByte(' ')
			b.WriteString(reasons[r.IntN(len(reasons))])
		}
		b.WriteByte('.')
	}
	return b.String()
}
