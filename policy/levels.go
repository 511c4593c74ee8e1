package policy

// Level is a signature verification level: a preset action per check.
type Level string

// The verification levels (spec "Signature Verification details").
const (
	LevelStrict     Level = "strict"
	LevelPermissive Level = "permissive"
	LevelAudit      Level = "audit"
	LevelSkip       Level = "skip"
)

// Levels returns the levels, from the strictest.
func Levels() []Level { return []Level{LevelStrict, LevelPermissive, LevelAudit, LevelSkip} }

// Valid reports whether l is one of the four levels (case-sensitive, as
// notation compares them).
func (l Level) Valid() bool {
	switch l {
	case LevelStrict, LevelPermissive, LevelAudit, LevelSkip:
		return true
	}
	return false
}

// Check is one verification check a level or an override sets an action for.
type Check string

// The checks, in the order notation runs them.
const (
	CheckIntegrity          Check = "integrity"
	CheckAuthenticity       Check = "authenticity"
	CheckAuthenticTimestamp Check = "authenticTimestamp"
	CheckExpiry             Check = "expiry"
	CheckRevocation         Check = "revocation"
)

// Checks returns the checks in notation's order.
func Checks() []Check {
	return []Check{CheckIntegrity, CheckAuthenticity, CheckAuthenticTimestamp, CheckExpiry, CheckRevocation}
}

// Valid reports whether c names a check.
func (c Check) Valid() bool {
	switch c {
	case CheckIntegrity, CheckAuthenticity, CheckAuthenticTimestamp, CheckExpiry, CheckRevocation:
		return true
	}
	return false
}

// Action is what a failed check does.
type Action string

// The actions.
const (
	// ActionEnforce: a failure fails verification.
	ActionEnforce Action = "enforce"
	// ActionLog: a failure is logged and verification goes on.
	ActionLog Action = "log"
	// ActionSkip: the check is not run.
	ActionSkip Action = "skip"
)

// Actions returns the actions, from the strictest.
func Actions() []Action { return []Action{ActionEnforce, ActionLog, ActionSkip} }

// Valid reports whether a names an action.
func (a Action) Valid() bool {
	switch a {
	case ActionEnforce, ActionLog, ActionSkip:
		return true
	}
	return false
}

// weaker reports whether a is less strict than b.
func (a Action) weaker(b Action) bool { return a.strength() < b.strength() }

func (a Action) strength() int {
	switch a {
	case ActionEnforce:
		return 2
	case ActionLog:
		return 1
	default:
		return 0
	}
}

// LevelAction is the action level l presets for check c (the table in the
// spec's "Signature Verification details"; notation-go's Level* values).
// It returns "" for an unknown level or check.
func LevelAction(l Level, c Check) Action {
	if !c.Valid() {
		return ""
	}
	switch l {
	case LevelStrict:
		return ActionEnforce
	case LevelPermissive:
		switch c {
		case CheckIntegrity, CheckAuthenticity:
			return ActionEnforce
		}
		return ActionLog
	case LevelAudit:
		if c == CheckIntegrity {
			return ActionEnforce
		}
		return ActionLog
	case LevelSkip:
		return ActionSkip
	}
	return ""
}

// EffectiveAction is the one place that turns a level and its overrides
// into the action of a check; validate, explain, lint and verify all read
// actions through it (usually as [Statement.Action]). An override replaces
// the level's action; integrity is never overridden and a skip level is
// never customised (documents breaking those rules do not load).
func EffectiveAction(l Level, overrides map[Check]Action, c Check) Action {
	if a, ok := overrides[c]; ok && l != LevelSkip && c != CheckIntegrity {
		return a
	}
	return LevelAction(l, c)
}

// CheckAction is the effective action of one check and where it comes from.
type CheckAction struct {
	Check  Check  `json:"check"`
	Action Action `json:"action"`
	// Source is "level <name>" or "override".
	Source string `json:"source"`
	// LevelAction is the action the level alone would give.
	LevelAction Action `json:"levelAction"`
}

// TimestampOption says when RFC 3161 timestamps are verified
// (signatureVerification.verifyTimestamp).
type TimestampOption string

// The verifyTimestamp values; "" means the default, always.
const (
	TimestampDefault         TimestampOption = ""
	TimestampAlways          TimestampOption = "always"
	TimestampAfterCertExpiry TimestampOption = "afterCertExpiry"
)

// Valid reports whether o is a value notation accepts ("" included).
func (o TimestampOption) Valid() bool {
	switch o {
	case TimestampDefault, TimestampAlways, TimestampAfterCertExpiry:
		return true
	}
	return false
}
